from netpulse.cli.main import app

app()
