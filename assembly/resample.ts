// placeholder: filled in by the resample work
