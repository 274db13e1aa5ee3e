"""The deployed queue-mode pipeline, emulated on 127.0.0.1 for `python -m local caption|serve|soak`.

emulator  moto's server and the resources the component creates (bucket, queue + DLQ, table, notification)
function  the function's runtime: environment, init (import of handler.main), warm-up, context object
workers   Lambda's SQS event source mapping: pollers, the SQS event, batchItemFailures, crashes
uploader  files -> object keys, and the uploads
results   accounting: table items and dead-lettered events per key, progress bar, table, JSON
caption / serve / soak   the three commands; soak also holds the fault injector
"""
