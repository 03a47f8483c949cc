from rayfarm.cli import main

main()
