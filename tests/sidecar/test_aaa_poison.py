def test_poison():
    import mlflow
    mlflow.set_registry_uri("http://127.0.0.1:9")
