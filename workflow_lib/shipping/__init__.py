"""The shipped model: prediction, the MLflow pyfunc model, the model card, the result pages."""
