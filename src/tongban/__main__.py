from tongban.cli import app

app()
