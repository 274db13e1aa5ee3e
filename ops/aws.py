"""AWS facts the tools and the tests share (ops, local, bench, tests/conftest.py import them from here).

ops ships in the wheel and imports no other tool, so what local and ops both need lives in ops.
"""

SQS_MESSAGES_PER_CALL = 10
"""The most messages one SQS call takes: ReceiveMessage's MaxNumberOfMessages, and the entries of a batch
call (SendMessageBatch, ChangeMessageVisibilityBatch, DeleteMessageBatch).
https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_ReceiveMessage.html"""

# The account a local pipeline (`python -m local`) and the tests use on moto.
MOTO_ACCOUNT_ID = "123456789012"  # moto's default account
MOTO_REGION = "us-east-1"
MOTO_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
"""Dummy credentials as environment variables: moto accepts any, boto3 wants some."""
MOTO_CLIENT_CREDENTIALS = {name.lower(): value for name, value in MOTO_CREDENTIALS.items()}
"""The same credentials as boto3.client's keyword arguments (aws_access_key_id, aws_secret_access_key)."""
