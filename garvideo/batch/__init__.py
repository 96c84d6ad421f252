"""garvideo.batch"""
