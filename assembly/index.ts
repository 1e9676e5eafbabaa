// The exported surface of the DSP core. Every export works on raw linear-memory pointers so
// the TypeScript side never copies or converts: see src/dsp for the typed wrapper.
export * from "./mem";
export * from "./g711";
export * from "./base64";
export * from "./json";
export * from "./ring";
export * from "./resample";
export * from "./vad";
export * from "./call";
