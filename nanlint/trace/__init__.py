"""``nanlint trace``: run a script for one batch under a monitor and join what it saw with the static findings.

Nothing in this package imports torch at import time, so that ``nanlint check`` never pays for it."""
