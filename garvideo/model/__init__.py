"""garvideo.model"""
