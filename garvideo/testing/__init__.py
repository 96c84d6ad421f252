"""garvideo.testing"""
