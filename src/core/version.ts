/** Written into quantization_config.json and the model card; test/version.test.ts keeps it equal to package.json's. */
export const TOOL_NAME = 'quarot-studio';
export const TOOL_VERSION = '0.1.0';
