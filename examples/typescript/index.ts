import * as pulumi from "@pulumi/pulumi";
// The SDK `pulumi package add ../..` generates into sdks/captioning and links in package.json.
import * as captioning from "@pulumi/captioning";

// Per-stack settings: `pulumi config set memory 4096` writes `captioning-typescript:memory`.
const config = new pulumi.Config();
// Function memory in MB (128-10240; CPU grows with it). The default model needs at least 2,048 MB
// on the ONNX runtime (measured: fp32 runs out of memory at 1,536 and 1,769 MB); see the README's model table.
const memory = config.getNumber("memory") ?? 2048;
// Reserved concurrency: the most instances captioning at once (at least 1).
const concurrency = config.getNumber("concurrency") ?? 1;
// In an account whose bucket already exists (docs/deploy.md, "An existing account"):
// `pulumi config set existingBucket team-photos` captions that bucket through EventBridge and changes
// nothing on it (its owner turns on its EventBridge notifications). The account's customer-managed key,
// permissions boundary and VPC, when it has them (subnets and security groups as JSON lists).
const existingBucket = config.get("existingBucket");
const kmsKeyArn = config.get("kmsKeyArn");
const permissionsBoundary = config.get("permissionsBoundary");
const vpcSubnetIds = config.getObject<string[]>("vpcSubnetIds") ?? [];
const vpcSecurityGroupIds = config.getObject<string[]>("vpcSecurityGroupIds") ?? [];

const pipeline = new captioning.CaptioningPipeline("captioning", {
    memorySize: memory,
    reservedConcurrency: concurrency,
    trigger: existingBucket ? "eventbridge" : "direct",
    existingBucketName: existingBucket,
    kmsKeyArn: kmsKeyArn,
    permissionsBoundary: permissionsBoundary,
    vpcSubnetIds: vpcSubnetIds,
    vpcSecurityGroupIds: vpcSecurityGroupIds,
    runtime: "onnx",
    precision: "fp32",
    keyPrefix: "uploads/",
    keySuffixes: [".jpg", ".jpeg", ".png"],
    logRetentionDays: 7,
    // An example stack: let `pulumi destroy` empty the bucket and the image repository.
    forceDestroy: true,
    // What comes next: one EventBridge event per caption, and the table's stream of new items.
    captionEvents: true,
    tableStream: true,
    tags: { example: "captioning-typescript" },
});

export const bucketName = pipeline.bucketName;
export const tableName = pipeline.tableName;
export const functionName = pipeline.functionName;
export const deadLetterQueueUrl = pipeline.deadLetterQueueUrl;
export const dashboardName = pipeline.dashboardName;
export const keyPrefix = pipeline.keyPrefix;
export const tableStreamArn = pipeline.tableStreamArn;
