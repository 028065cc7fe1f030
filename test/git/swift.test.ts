import { describeSwift, uniqueContainer } from "../helpers/swift.js";
import { runScenarios } from "./scenarios.js";

// The whole end-to-end suite (real git repos, the real CLI) against the real Swift. A 1 MiB
// segment size sends the suite's larger files through Static Large Objects too.
describeSwift("swift end to end", (ep) => {
  runScenarios("swift store (real OpenStack Swift)", async () => ({
    objectStore: { type: "swift", authUrl: ep.authUrl, user: ep.user, key: ep.key, container: uniqueContainer("pantri-e2e"), segmentSize: 1024 * 1024 },
  }));
});
