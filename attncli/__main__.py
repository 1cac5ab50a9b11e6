from attncli.cli.main import run

run()
