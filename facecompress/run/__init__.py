"""Running models over the dataset: sessions, the cached image loop, honest timing, the benchmark stage, Ray."""
