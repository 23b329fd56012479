// Defines the ETL host functions as read-only globals. Evaluated once per QuickJS context; the
// `native` functions it receives stay private to this closure. Returns `defineLoadTo(name)`,
// which the runtime calls for each `loadTo<Name>` identifier the script references.
// With `undefinedAsNull` (SQL ETL), a loaded object's own properties that are `undefined` are
// loaded as `null` — a NULL column, as RavenDB writes them — instead of being dropped.
// With `resultsUnused` (the parse shows every `loadTo…` call is a statement of its own, so its
// value is dropped), the calls return one shared, frozen result instead of a fresh object with
// a closure each: that allocation was about 12% of a SQL ETL script's cost.
// With `patchMode` (a patch script, not ETL), `put(id, doc)` and `del(id)` are defined too.
// With `olapMode` (OLAP ETL), `partitionBy(…)`, `noPartition()` and `$customPartitionValue`
// (`customPartitionValue`, or null) are defined, and `loadTo…` takes a partition key before the
// object: its normalized form, `[[name, value], …]` as JSON text, is the load's one extra
// argument.
(function (native, undefinedAsNull, resultsUnused, patchMode, olapMode, customPartitionValue) {
    'use strict';
    var global = globalThis;
    var defineProperty = Object.defineProperty;
    var stringify = JSON.stringify;
    var loadTo = native.loadTo;
    var addAttachment = native.addAttachment;
    var hasAttachment = native.hasAttachment;

    var hasOwn = Object.prototype.hasOwnProperty;
    var isArray = Array.isArray;
    var objectValues = Object.values;
    var slice = Array.prototype.slice;

    // The arguments after the object (Queue ETL's routing key and CloudEvents attributes), as
    // JSON text, or undefined when there are none.
    function extraArguments(args, from) {
        return args.length > from ? stringify(slice.call(args, from)) : undefined;
    }

    function undefinedToNull(obj) {
        if (!undefinedAsNull || obj === null || typeof obj !== 'object' || isArray(obj)
            || typeof obj.toJSON === 'function') {
            return obj;
        }
        // Most objects have no undefined member: a native scan, no copy.
        if (objectValues(obj).indexOf(undefined) < 0) {
            return obj;
        }
        var copy = {};
        for (var key in obj) {
            if (hasOwn.call(obj, key)) {
                var value = obj[key];
                copy[key] = value === undefined ? null : value;
            }
        }
        return copy;
    }

    function define(name, value) {
        defineProperty(global, name, {
            value: value,
            writable: false,
            enumerable: false,
            configurable: false,
        });
    }

    var sharedResult = Object.freeze({
        addAttachment: function () {
            throw new TypeError('addAttachment: call it on the value loadTo returned');
        },
    });

    function loadResult(index) {
        if (resultsUnused) {
            return sharedResult;
        }
        return {
            addAttachment: function (nameOrReference, reference) {
                if (arguments.length < 2) {
                    addAttachment(index, null, nameOrReference);
                } else {
                    addAttachment(index, nameOrReference, reference);
                }
            },
        };
    }

    function getMetadata(doc) {
        if (doc === null || (typeof doc !== 'object' && typeof doc !== 'function')) {
            return null;
        }
        var metadata = doc['@metadata'];
        return metadata === undefined ? null : metadata;
    }

    // OLAP ETL's partition keys. A key is a frozen object that only `partitionKeys` knows,
    // mapped to its normalized JSON text: an object a script builds itself, whatever its
    // shape, is never taken for one. Everything used here is captured now, so that a script
    // changing a prototype (WeakMap's `get`, Array's `toJSON`) cannot forge or bend a key.
    var reflectApply = Reflect.apply;
    var freeze = Object.freeze;
    var partitionKeys = olapMode ? new WeakMap() : null;
    var weakMapGet = WeakMap.prototype.get;
    var weakMapSet = WeakMap.prototype.set;
    var DateConstructor = Date;
    var datePrototype = Date.prototype;
    var dateGetTime = datePrototype.getTime;
    var getUTCFullYear = datePrototype.getUTCFullYear;
    var getUTCMonth = datePrototype.getUTCMonth;
    var getUTCDate = datePrototype.getUTCDate;
    var getUTCHours = datePrototype.getUTCHours;
    var getUTCMinutes = datePrototype.getUTCMinutes;
    var isFinite = global.isFinite;

    // The time value of a Date, or undefined for anything else (whatever it claims to be).
    function timeOf(value) {
        try {
            return reflectApply(dateGetTime, value, []);
        } catch (e) {
            return undefined;
        }
    }

    function datePart(getter, date) {
        return reflectApply(getter, date, []);
    }

    function twoDigits(n) {
        return n < 10 ? '0' + n : '' + n;
    }

    // A Date as RavenDB names its partitions: UTC `yyyy-MM-dd-HH-mm`.
    function formatDate(time) {
        var date = new DateConstructor(time);
        var year = datePart(getUTCFullYear, date);
        var yearText = '' + (year < 0 ? -year : year);
        while (yearText.length < 4) {
            yearText = '0' + yearText;
        }
        return (year < 0 ? '-' : '') + yearText
            + '-' + twoDigits(datePart(getUTCMonth, date) + 1)
            + '-' + twoDigits(datePart(getUTCDate, date))
            + '-' + twoDigits(datePart(getUTCHours, date))
            + '-' + twoDigits(datePart(getUTCMinutes, date));
    }

    function describeValue(value) {
        if (value === null) {
            return 'null';
        }
        if (isArray(value)) {
            return 'an array';
        }
        switch (typeof value) {
            case 'undefined': return 'undefined';
            case 'number': return '' + value;
            case 'object': return 'an object';
            case 'function': return 'a function';
            case 'symbol': return 'a symbol';
            case 'bigint': return 'a bigint';
            default: return 'a ' + typeof value;
        }
    }

    // The text of a partition's value: strings as they are, finite numbers and booleans as
    // String() writes them, Dates as RavenDB formats them; anything else is an error.
    function partitionText(name, value) {
        switch (typeof value) {
            case 'string':
                return value;
            case 'number':
                if (isFinite(value)) {
                    return '' + value;
                }
                break;
            case 'boolean':
                return value ? 'true' : 'false';
            case 'object':
                if (value !== null && !isArray(value)) {
                    var time = timeOf(value);
                    if (time === time && time !== undefined) {
                        return formatDate(time);
                    }
                    if (time !== undefined) {
                        throw new TypeError("partitionBy: the value of '" + name
                            + "' is an invalid Date");
                    }
                }
                break;
        }
        throw new TypeError("partitionBy: the value of '" + name + "' is "
            + describeValue(value));
    }

    // `["name","value"]`, from strings only (no toJSON is looked up for a string).
    function pairJson(name, text) {
        return '[' + stringify(name) + ',' + stringify(text) + ']';
    }

    // `pairsJson` is the normalized key: `[["name","value"],…]`.
    function partitionKey(pairsJson) {
        var key = freeze({});
        reflectApply(weakMapSet, partitionKeys, [key, pairsJson]);
        return key;
    }

    function olapLoad(target, key, obj, nArguments, keyPosition) {
        var pairsJson = key !== null && typeof key === 'object'
            ? reflectApply(weakMapGet, partitionKeys, [key])
            : undefined;
        if (pairsJson === undefined) {
            throw new TypeError('loadTo: the ' + keyPosition
                + ' argument must be partitionBy(\u2026) or noPartition()');
        }
        if (nArguments > (keyPosition === 'first' ? 2 : 3)) {
            throw new TypeError('loadTo: OLAP ETL takes nothing after the object');
        }
        return loadResult(loadTo(target, undefinedToNull(obj), '[' + pairsJson + ']'));
    }

    if (olapMode) {
        var unpartitioned = partitionKey('[]');
        define('noPartition', function () {
            return unpartitioned;
        });
        define('partitionBy', function () {
            var n = arguments.length;
            if (n === 0) {
                throw new TypeError('partitionBy: expected a value or [name, value] arrays');
            }
            if (n === 1 && !isArray(arguments[0])) {
                return partitionKey(
                    '[' + pairJson('_partition', partitionText('_partition', arguments[0])) + ']');
            }
            var pairsJson = '[';
            for (var i = 0; i < n; i++) {
                var pair = arguments[i];
                if (!isArray(pair) || pair.length !== 2) {
                    throw new TypeError('partitionBy: each partition must be a [name, value] array');
                }
                var name = pair[0];
                if (typeof name !== 'string' || name === '') {
                    throw new TypeError('partitionBy: a partition name must be a non-empty string');
                }
                pairsJson += (i === 0 ? '' : ',') + pairJson(name, partitionText(name, pair[1]));
            }
            return partitionKey(pairsJson + ']');
        });
        define('$customPartitionValue',
            customPartitionValue === undefined ? null : customPartitionValue);
    }

    define('loadTo', function (target, obj) {
        if (typeof target !== 'string') {
            throw new TypeError('loadTo: the target name must be a string');
        }
        if (olapMode) {
            return olapLoad(target, obj, arguments[2], arguments.length, 'second');
        }
        return loadResult(loadTo(target, undefinedToNull(obj), extraArguments(arguments, 2)));
    });
    define('getMetadata', getMetadata);
    define('id', function (doc) {
        var metadata = getMetadata(doc);
        if (metadata === null || typeof metadata !== 'object') {
            return null;
        }
        var id = metadata['@id'];
        return id === undefined ? null : id;
    });
    define('load', function (id) {
        if (id === null || id === undefined) {
            return null;
        }
        return native.load(String(id));
    });
    if (patchMode) {
        define('put', function (id, doc) {
            if (doc === null || typeof doc !== 'object' || isArray(doc)) {
                throw new TypeError('put: the document must be an object');
            }
            return native.put(id === null || id === undefined ? '' : String(id), stringify(doc));
        });
        define('del', function (id) {
            if (id === null || id === undefined) {
                throw new TypeError('del: the document id is required');
            }
            return native.del(String(id));
        });
    }
    define('getAttachments', native.getAttachments);
    define('hasAttachment', function (name) {
        return hasAttachment(String(name));
    });
    define('loadAttachment', function (name) {
        name = String(name);
        return hasAttachment(name) ? '$attachment/' + name : null;
    });
    define('output', function () {
        var line = '';
        for (var i = 0; i < arguments.length; i++) {
            var value = arguments[i];
            var text = value !== null && typeof value === 'object' ? stringify(value) : String(value);
            line += (i === 0 ? '' : ' ') + text;
        }
        native.output(line);
    });
    define('varchar', function (value, size) {
        return { Type: 'AnsiString', Value: value, Size: size === undefined ? 50 : size };
    });
    define('nvarchar', function (value, size) {
        return { Type: 'String', Value: value, Size: size === undefined ? 50 : size };
    });

    return function defineLoadTo(name) {
        var target = name.slice('loadTo'.length);
        if (olapMode) {
            define(name, function (key, obj) {
                return olapLoad(target, key, obj, arguments.length, 'first');
            });
            return;
        }
        define(name, function (obj) {
            return loadResult(loadTo(target, undefinedToNull(obj), extraArguments(arguments, 1)));
        });
    };
})
