import pkg from '../../package.json';

/** Written into quantization_config.json and the model card. */
export const TOOL_NAME = 'quarot-studio';
export const TOOL_VERSION: string = pkg.version;
