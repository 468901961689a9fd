"""Job execution: the RQ job function, its callbacks, and the worker processes that run them."""
