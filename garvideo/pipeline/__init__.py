"""garvideo.pipeline"""
