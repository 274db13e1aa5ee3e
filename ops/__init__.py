"""`python -m ops`: operate a captioning pipeline, deployed or local.

__main__  the command line: options, dispatch, clear errors
locate    where the pipeline is: flags, a running `python -m local serve`, or `pulumi stack output`
backfill  caption the objects already in the bucket
redrive   send dead-lettered events back through the pipeline
status    items by status, last failures, queue depths, alarms firing
control   rate limit, and Ctrl-C that lets the step in hand finish
render    progress bar, summaries, JSON
"""
