"""`python -m hyperpod_local.cli`: the command line, as the process provider starts a
node's agent with the server's own interpreter."""

from hyperpod_local.cli.commands import main

main()
