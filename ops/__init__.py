"""`python -m ops`: operate a captioning pipeline, deployed or local.

__main__  the command line: options, dispatch, clear errors
locate    where the pipeline is: flags, a running `python -m local serve`, or `pulumi stack output`
backfill  caption the objects already in the bucket
redrive   send dead-lettered events back through the pipeline
status    items by status, last failures, queue depths, alarms firing
control   rate limit, and Ctrl-C that lets the step in hand finish
render    progress bar, summaries, JSON

What the other tools share with ops lives here, since ops ships in the wheel and imports no other tool:
serve_state  the file a running `python -m local serve` leaves for `--local` (local writes it through this)
aws          SQS's per-call message limit; the account, region and dummy credentials used on moto
arguments    argument types of every command line (ops, local, models, bench)
"""
