"""What every stage that trains or evaluates a net needs: the device and precision (device), the one training
engine (engine), classification metrics (metrics) and the image grids of the example figures (figures). Those
stages depend on this whole folder in dvc.yaml."""
