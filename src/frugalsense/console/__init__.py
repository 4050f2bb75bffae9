"""The web console: served by `frugalsense serve` at ``/`` (one page, its own script and style sheet, no build
step, nothing from another origin), signed in with an API key and a session cookie. See docs/console.md.

Here: the sessions (`sessions.py`), the page (`page.py`, `static/`) and the cloud list prices the Costs screen
compares with (`prices.py`); the routes are `frugalsense.api.routes.console`.
"""
