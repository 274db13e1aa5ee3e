"""The deployed queue-mode pipeline, emulated on 127.0.0.1 for `python -m local caption|serve|soak`.

settings           LocalSettings, the one settings object of every command (the component's key filters)
emulator           moto's server on 127.0.0.1 (a clear error when the port is taken)
resources          the component's resources in it, from the component (policies, retention, key filters)
lambda_runtime     the function: in process (captioning.function.processing) or its image under the RIE
event_source       Lambda's SQS event source mapping: pollers, the SQS event, batchItemFailures, crashes
uploader           files -> object keys, and the uploads
tracking           polling: table items and dead-lettered events per key
dead_letters       reading the dead-letter queue without hiding its messages
rendering          progress bar, results table and JSON, serve's lines, the soak's summary
emulated_pipeline  all of the above as one context manager
caption / serve / soak   the three commands (soak_objects: what it uploads; faults: what it breaks)

serve leaves its state file for `python -m ops --local` through ops/serve_state.py; the emulator's account
and credentials are ops/aws.py's.
"""
