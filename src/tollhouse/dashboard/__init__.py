"""The operator's page at `/dashboard`: sign-in and sessions (sessions.py), the HTTP routes
(http.py), the data of each view (views.py, calls.py), and the page itself (static/: plain
HTML, JavaScript and CSS, with uPlot vendored), served by the gateway with no build step."""
