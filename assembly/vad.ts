// placeholder: filled in by the vad work
