"""gunicorn settings, read from the working directory by default (`gunicorn 'app:create_app()'`)."""

import gc


def post_worker_init(worker):
    # What the app built at start-up lives as long as the worker: move it out of the garbage
    # collector's reach, so a full collection doesn't walk ~130,000 objects (~100 ms here) in the
    # middle of a request.
    gc.collect()
    gc.freeze()
