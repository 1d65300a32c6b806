# AWS is mocked (mock_provider): checks the database Terraform would request, offline.
mock_provider "aws" {
  source = "../../tests/mocks"
}

variables {
  name               = "churn-test-mlflow"
  vpc_id             = "vpc-0123456789abcdef0"
  private_subnet_ids = ["subnet-a", "subnet-b", "subnet-c"]
}

run "private_encrypted_tls_only_and_protected" {
  assert {
    condition     = !aws_db_instance.this.publicly_accessible && aws_db_subnet_group.this.subnet_ids == toset(var.private_subnet_ids)
    error_message = "The database must live in the private subnets, never publicly accessible."
  }
  assert {
    condition = (
      aws_db_instance.this.storage_encrypted && aws_db_instance.this.kms_key_id == module.key.key_arn &&
      aws_db_instance.this.manage_master_user_password && aws_db_instance.this.master_user_secret_kms_key_id == module.key.key_arn
    )
    error_message = "Storage and the generated master secret must be encrypted with the database key."
  }
  assert {
    condition     = contains([for p in aws_db_parameter_group.this.parameter : "${p.name}=${p.value}"], "rds.force_ssl=1")
    error_message = "Connections must be forced onto TLS."
  }
  assert {
    condition     = aws_db_instance.this.deletion_protection && !aws_db_instance.this.skip_final_snapshot && aws_db_instance.this.backup_retention_period >= 7
    error_message = "The backend store must be protected from deletion and backed up."
  }
  assert {
    condition = (
      aws_vpc_security_group_ingress_rule.from_clients.referenced_security_group_id == aws_security_group.clients.id &&
      aws_vpc_security_group_ingress_rule.from_clients.from_port == 5432 && aws_vpc_security_group_ingress_rule.from_clients.to_port == 5432
    )
    error_message = "Only the database clients group (the MLflow pods) may reach PostgreSQL, on 5432 only."
  }
}

run "major_version_only_and_minor_upgrades_by_rds" {
  command = plan
  assert {
    condition     = aws_db_instance.this.engine_version == "16" && aws_db_instance.this.auto_minor_version_upgrade && aws_db_parameter_group.this.family == "postgres16"
    error_message = "Pin the major only: with auto minor upgrades a major.minor pin makes the next apply fail."
  }
}

run "a_minor_pin_is_rejected" {
  command = plan
  variables {
    engine_version = "16.4"
  }
  expect_failures = [var.engine_version]
}
