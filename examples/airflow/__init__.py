"""Airflow DAGs checked as Airflow runs them (`idemtest.airflow.check`, needs idemtest[airflow])."""
