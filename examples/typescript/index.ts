import * as pulumi from "@pulumi/pulumi";
// The SDK `pulumi package add ../..` generates into sdks/captioning and links in package.json.
import * as captioning from "@pulumi/captioning";

// Per-stack settings: `pulumi config set memory 4096` writes `captioning-typescript:memory`.
const config = new pulumi.Config();
// Function memory in MB (128-10240; CPU grows with it). The default model needs about 1,330 MB
// on the ONNX runtime; see the repository README's model table for other models.
const memory = config.getNumber("memory") ?? 2048;
// Reserved concurrency: the most instances captioning at once (at least 1).
const concurrency = config.getNumber("concurrency") ?? 1;

const pipeline = new captioning.CaptioningPipeline("captioning", {
    memorySize: memory,
    reservedConcurrency: concurrency,
    trigger: "direct",
    runtime: "onnx",
    precision: "fp32",
    keyPrefix: "uploads/",
    keySuffixes: [".jpg", ".jpeg", ".png"],
    logRetentionDays: 7,
    // An example stack: let `pulumi destroy` empty the bucket and the image repository.
    forceDestroy: true,
    tags: { example: "captioning-typescript" },
});

export const bucketName = pipeline.bucketName;
export const tableName = pipeline.tableName;
export const functionName = pipeline.functionName;
export const deadLetterQueueUrl = pipeline.deadLetterQueueUrl;
export const dashboardName = pipeline.dashboardName;
export const keyPrefix = pipeline.keyPrefix;
