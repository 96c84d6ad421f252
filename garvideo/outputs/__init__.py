"""garvideo.outputs"""
