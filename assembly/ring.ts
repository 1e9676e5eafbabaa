// placeholder: filled in by the ring work
