"""The controller: a FastAPI application (`create_app`). Routes are thin; see `routes/`."""
