"""The HTTP edge: the aiohttp app, middlewares, each face's routes, admin API and dashboard."""
