// placeholder: filled in by the g711 work
