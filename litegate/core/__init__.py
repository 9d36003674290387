"""The core every face shares: plan a request, run its attempts, settle its accounting."""
