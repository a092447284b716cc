/** The pipeline worker: exposes the handler (./handler.ts) to the page over comlink. */
import * as Comlink from 'comlink';
import { createPipelineApi } from './handler';

Comlink.expose(createPipelineApi());
