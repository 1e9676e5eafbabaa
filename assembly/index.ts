// The exported surface of the DSP core. Every export works on raw linear-memory pointers so
// the TypeScript side never copies or converts: see src/dsp for the typed wrapper.
export * from "./mem";
