from evgi.cli import main

main()
