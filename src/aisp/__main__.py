from aisp.cli.main import main

main()
