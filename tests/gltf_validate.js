// Validate a .glb with Khronos' gltf-validator: node gltf_validate.js <path to gltf-validator module> <file.glb>
// Prints {"errors": n, "warnings": n, "messages": [...]} as JSON.
const fs = require("fs");
const validator = require(process.argv[2]);
validator
  .validateBytes(new Uint8Array(fs.readFileSync(process.argv[3])), { maxIssues: 100 })
  .then((report) => {
    const issues = report.issues;
    console.log(JSON.stringify({ errors: issues.numErrors, warnings: issues.numWarnings, messages: issues.messages.slice(0, 20) }));
  })
  .catch((error) => {
    console.error(String(error));
    process.exit(2);
  });
