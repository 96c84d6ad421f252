"""garvideo.tracking"""
