"""Import paths of the model card's Quick Start (`dvlt.util.preprocess`)."""
