import { CreateBucketCommand, S3Client } from "@aws-sdk/client-s3";
import { describeSwift, uniqueContainer } from "../helpers/swift.js";
import { runScenarios } from "./scenarios.js";

// The whole end-to-end suite against the real S3 API of Swift's s3api middleware. Credentials
// travel the SDK's default chain (environment), as they would for users.
describeSwift("s3 end to end", (ep) => {
  process.env.AWS_ACCESS_KEY_ID = ep.s3AccessKey;
  process.env.AWS_SECRET_ACCESS_KEY = ep.s3SecretKey;
  runScenarios("s3 store (Swift s3api)", async () => {
    const bucket = uniqueContainer("pantri-e2e");
    const admin = new S3Client({
      endpoint: ep.s3Endpoint,
      region: ep.region,
      forcePathStyle: true,
      credentials: { accessKeyId: ep.s3AccessKey, secretAccessKey: ep.s3SecretKey },
    });
    await admin.send(new CreateBucketCommand({ Bucket: bucket }));
    admin.destroy();
    return { objectStore: { type: "s3", bucket, endpoint: ep.s3Endpoint, region: ep.region, partSize: 5 * 1024 * 1024 } };
  });
});
