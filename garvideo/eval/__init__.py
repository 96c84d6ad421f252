"""garvideo.eval"""
