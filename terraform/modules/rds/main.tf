# PostgreSQL for MLflow's backend store: private subnets only, reachable on 5432 only from the
# clients security group (given to the MLflow server's pods through a SecurityGroupPolicy, not to
# every node and pod of the cluster), TLS forced, storage and Performance Insights encrypted with a
# customer-managed key, master password generated and kept by RDS in Secrets Manager.
module "key" {
  source                = "../kms"
  name                  = "${var.name}-db"
  description           = "Encrypts the ${var.name} database, its secret and its logs"
  allow_cloudwatch_logs = true
  tags                  = var.tags
}

resource "aws_db_subnet_group" "this" {
  name       = var.name
  subnet_ids = var.private_subnet_ids
  tags       = var.tags
}

resource "aws_security_group" "this" {
  name        = "${var.name}-db"
  description = "PostgreSQL for MLflow, reachable from the EKS cluster only"
  vpc_id      = var.vpc_id
  tags        = var.tags
}

resource "aws_security_group" "clients" {
  # checkov:skip=CKV2_AWS_5:Attached to the MLflow server pods by a SecurityGroupPolicy (manifests/base/mlflow.yaml), which Terraform does not see.
  name        = "${var.name}-db-clients"
  description = "Pods allowed to reach the MLflow database (the MLflow server)"
  vpc_id      = var.vpc_id
  tags        = var.tags
}

resource "aws_vpc_security_group_ingress_rule" "from_clients" {
  security_group_id            = aws_security_group.this.id
  description                  = "PostgreSQL from the MLflow server pods only"
  referenced_security_group_id = aws_security_group.clients.id
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
}

resource "aws_vpc_security_group_egress_rule" "clients_to_db" {
  security_group_id            = aws_security_group.clients.id
  description                  = "PostgreSQL to the MLflow database"
  referenced_security_group_id = aws_security_group.this.id
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
}

resource "aws_db_parameter_group" "this" {
  name   = var.name
  family = "postgres${var.engine_version}"
  parameter {
    name  = "rds.force_ssl"
    value = "1"
  }
  parameter {
    name  = "log_statement"
    value = "ddl"
  }
  parameter {
    name  = "log_min_duration_statement"
    value = "1000"
  }
  tags = var.tags
}

data "aws_partition" "current" {}

module "monitoring_role" {
  source              = "../service-role"
  name                = "${var.name}-rds-monitoring"
  service             = "monitoring.rds.amazonaws.com"
  managed_policy_arns = ["arn:${data.aws_partition.current.partition}:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"]
  tags                = var.tags
}

resource "aws_db_instance" "this" {
  # checkov:skip=CKV_AWS_157:Multi-AZ is chosen per environment (var.multi_az): on in prod, off in dev and staging to halve their cost (terraform/README.md).
  identifier                          = var.name
  engine                              = "postgres"
  engine_version                      = var.engine_version
  instance_class                      = var.instance_class
  allocated_storage                   = var.allocated_storage_gb
  max_allocated_storage               = var.allocated_storage_gb * 4
  storage_type                        = "gp3"
  storage_encrypted                   = true
  kms_key_id                          = module.key.key_arn
  db_name                             = "mlflow"
  username                            = "mlflow"
  manage_master_user_password         = true
  master_user_secret_kms_key_id       = module.key.key_arn
  iam_database_authentication_enabled = true
  db_subnet_group_name                = aws_db_subnet_group.this.name
  vpc_security_group_ids              = [aws_security_group.this.id]
  parameter_group_name                = aws_db_parameter_group.this.name
  publicly_accessible                 = false
  multi_az                            = var.multi_az
  backup_retention_period             = var.backup_retention_days
  deletion_protection                 = true
  skip_final_snapshot                 = false
  final_snapshot_identifier           = "${var.name}-final"
  copy_tags_to_snapshot               = true
  auto_minor_version_upgrade          = true
  enabled_cloudwatch_logs_exports     = ["postgresql", "upgrade"]
  performance_insights_enabled        = true
  performance_insights_kms_key_id     = module.key.key_arn
  monitoring_interval                 = 60
  monitoring_role_arn                 = module.monitoring_role.arn
  tags                                = var.tags
}
