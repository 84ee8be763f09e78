"""latentspace: what pretrained convolutional networks keep in their latent space (three studies)."""
