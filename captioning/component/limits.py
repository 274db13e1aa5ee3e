"""AWS-side limits the component checks before creating anything.

Mocks (and `pulumi preview`) do not validate values against AWS, so a bad value would only
surface half-way through `pulumi up`. Each limit below was looked up in AWS's documentation;
the source is named beside it.
"""

# Lambda quotas, "Function memory allocation: 128 MB to 10,240 MB, in 1-MB increments" and
# "Function timeout: 900 seconds":
# https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html
MEMORY_MB = (128, 10240)
TIMEOUT_SECONDS = (1, 900)

# EphemeralStorage.Size, "Minimum value of 512. Maximum value of 10240":
# https://docs.aws.amazon.com/lambda/latest/dg/API_EphemeralStorage.html
EPHEMERAL_STORAGE_MB = (512, 10240)

# CreateFunction Architectures: https://docs.aws.amazon.com/lambda/latest/dg/API_CreateFunction.html
ARCHITECTURES = ("x86_64", "arm64")

# Event source mapping for SQS, BatchSize: "For standard queues, the maximum is 10,000":
# https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-parameters.html
# MaximumBatchingWindowInSeconds: "any value from 0 seconds to 300 seconds ... when you set
# BatchSize to a value greater than 10, you must set MaximumBatchingWindowInSeconds to at least 1"
# (CreateEventSourceMapping / GetEventSourceMapping API reference).
SQS_BATCH_SIZE = (1, 10000)
SQS_BATCH_SIZE_WITHOUT_WINDOW = 10
BATCHING_WINDOW_SECONDS = (0, 300)

# ScalingConfig.MaximumConcurrency, "Minimum value of 2. Maximum value of 1000":
# https://docs.aws.amazon.com/lambda/latest/dg/API_ScalingConfig.html
SQS_MAXIMUM_CONCURRENCY = (2, 1000)

# PutFunctionEventInvokeConfig: MaximumRetryAttempts 0-2, MaximumEventAgeInSeconds 60-21600:
# https://docs.aws.amazon.com/lambda/latest/api/API_PutFunctionEventInvokeConfig.html
ASYNC_RETRY_ATTEMPTS = (0, 2)
ASYNC_EVENT_AGE_SECONDS = (60, 21600)

# SQS CreateQueue: MessageRetentionPeriod 60 s to 1,209,600 s (14 days); VisibilityTimeout
# 0 to 43,200 s (12 hours); redrive maxReceiveCount 1 to 1,000:
# https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_CreateQueue.html
SQS_MAX_RETENTION_SECONDS = 1_209_600
SQS_MAX_RECEIVE_COUNT = (1, 1000)

# PutRetentionPolicy retentionInDays, "Possible values are: 1, 3, 5, 7, 14, 30, 60, 90, 120,
# 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, and 3653":
# https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_PutRetentionPolicy.html
LOG_RETENTION_DAYS = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)

# Lambda's guidance for SQS event sources: set the queue's visibility timeout to at least six
# times the function timeout (plus the batching window):
# https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html
VISIBILITY_TIMEOUT_FACTOR = 6

# PutMetricAlarm: "Valid values are 10, 20, 30, and any multiple of 60" for Period, and "the total
# evaluation period (Period x EvaluationPeriods) ... can be up to one day" (86,400 s):
# https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricAlarm.html
ALARM_SUB_MINUTE_PERIODS = (10, 20, 30)
ALARM_MAX_EVALUATION_SECONDS = 86_400

# PutMetricData Namespace: 1-255 characters, "[^:].*", and not starting with "AWS/" (reserved):
# https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricData.html
METRICS_NAMESPACE_LENGTH = (1, 255)
RESERVED_METRICS_NAMESPACE_PREFIX = "AWS/"

# VpcConfig: "SubnetIds ... Maximum number of 16 items", "SecurityGroupIds ... Maximum number of 5 items":
# https://docs.aws.amazon.com/lambda/latest/api/API_VpcConfig.html
VPC_MAX_SUBNETS = 16
VPC_MAX_SECURITY_GROUPS = 5

# SnapStart "does not support ... ephemeral storage greater than 512 MB" (nor provisioned concurrency):
# https://docs.aws.amazon.com/lambda/latest/dg/snapstart.html
SNAP_START_MAX_EPHEMERAL_STORAGE_MB = 512

# PutEvents EventBusName / CreateEventBus Name: 1-256 characters, `[/\.\-_A-Za-z0-9]+`:
# https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_CreateEventBus.html
EVENT_BUS_NAME_LENGTH = (1, 256)

# Bucket naming rules: 3-63 characters; lowercase letters, numbers, dots and hyphens; beginning and ending
# with a letter or number: https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html
BUCKET_NAME_LENGTH = (3, 63)
