{#- The one definition of a purchase (issue #20). Every model and ML reader that counts
    buying uses these (or fct_orders.is_purchase / net_amount, which are built from them);
    nothing else compares status with 'cancelled' or 'returned' for that purpose.

    - cancelled: status 'cancelled' - never bought, nets to 0;
    - return: status 'returned' (the order was sent back and refunded) or a credit note (a
      negative total_amount, which the contract allows only with status 'returned');
    - purchase: neither; a customer whose only order was fully refunded is no buyer;
    - net amount: what the order adds to the customer's net buying: total_amount for a
      purchase, 0 for a cancelled or returned order, the (negative) amount of a credit note,
      so that summing net_amount over a person's orders nets credit notes out. -#}
{% macro order_is_cancelled(status) -%}
    coalesce(lower(trim({{ status }})) = 'cancelled', false)
{%- endmacro %}

{% macro order_is_return(status, total_amount) -%}
    coalesce(lower(trim({{ status }})) = 'returned' or {{ total_amount }} < 0, false)
{%- endmacro %}

{% macro order_is_purchase(status, total_amount) -%}
    (not {{ order_is_cancelled(status) }} and not {{ order_is_return(status, total_amount) }})
{%- endmacro %}

{% macro order_net_amount(status, total_amount) -%}
    case
        when {{ order_is_cancelled(status) }} then 0
        when coalesce({{ total_amount }}, 0) < 0 then {{ total_amount }}
        when {{ order_is_return(status, total_amount) }} then 0
        else coalesce({{ total_amount }}, 0)
    end
{%- endmacro %}
