// placeholder: filled in by the base64 work
