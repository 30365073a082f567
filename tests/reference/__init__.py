"""Tests of caffe_like.reference: NumPy references vs hand-computed values, finite differences and real Caffe.

These tests import only NumPy and caffe_like.reference (test_no_torch.py checks that torch stays out).
"""
