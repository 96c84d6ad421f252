"""garvideo.video"""
